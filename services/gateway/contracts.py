"""What the gateway expects of inventory and orders: its own models of their answers (consumer side).

Written here, not imported from the providers' apps, so a provider changing its answers is caught by
``tests/services/test_consumer_contracts.py`` (these models against the providers' served answers)
rather than silently followed. Unknown extra fields are ignored (a provider may add some); a field the
gateway reads missing, renamed or of another type is a broken contract (the gateway answers 502).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

PRODUCT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
# Model comments, not docstrings: a docstring would enter the gateway's published schema.


# inventory `GET /products/{id}`: re-served by `GET /catalog/{id}`.
class Product(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    price_cents: int
    stock: int


# inventory `GET /products`: re-served by `GET /catalog`.
class ProductList(BaseModel):
    products: list[Product]


class ReservationRequest(BaseModel):
    """What the gateway sends to inventory ``PUT /reservations/{order_id}``."""

    product_id: str
    quantity: int


class Reservation(BaseModel):
    """inventory's answer to a reservation: the gateway reads the amount to charge."""

    model_config = ConfigDict(extra="ignore")

    order_id: UUID
    amount_cents: int


class OrderRequest(BaseModel):
    """What the gateway sends to orders ``PUT /orders/{order_id}``."""

    product_id: str
    quantity: int
    amount_cents: int


# orders `PUT`/`GET /orders/{order_id}`: re-served by `GET /orders/{id}`.
class Order(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_id: UUID
    product_id: str
    quantity: int
    amount_cents: int
    status: Literal["placed", "paid", "payment_failed"]
    failure_reason: str | None = None
    created_at: datetime
    updated_at: datetime


class Problem(BaseModel):
    """A provider's 4xx answer (application/problem+json): the gateway passes ``title``/``detail`` on."""

    model_config = ConfigDict(extra="ignore")

    title: str
    status: int
    detail: str | None = None
