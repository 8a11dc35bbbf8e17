from services.common.app import serve
from services.orders.app import OrdersSettings, create_app

serve(OrdersSettings, create_app)
