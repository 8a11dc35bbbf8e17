"""Logs end to end: Elasticsearch layout and security, shippers (rsyslog, Logstash), Kibana objects,
retention and archiving, log search."""
