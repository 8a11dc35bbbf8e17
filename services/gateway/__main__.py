from services.common.app import serve
from services.gateway.app import GatewaySettings, create_app

serve(GatewaySettings, create_app)
