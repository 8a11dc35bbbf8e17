from services.common.app import serve
from services.inventory.app import InventorySettings, create_app

serve(InventorySettings, create_app)
