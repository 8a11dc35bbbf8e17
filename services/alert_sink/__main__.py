from services.alert_sink.app import AlertSinkSettings, create_app
from services.common.app import serve

serve(AlertSinkSettings, create_app)
