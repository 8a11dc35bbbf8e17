from services.common.app import serve
from services.payments.app import PaymentsSettings, create_app

serve(PaymentsSettings, create_app)
