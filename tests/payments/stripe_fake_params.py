"""Stripe's form-encoded parameters as the fake reads them, and the errors Stripe answers bad ones with."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

BRACKETS = re.compile(r"\[([^\[\]]*)\]")


class StripeError(Exception):
    """An error as Stripe answers it: an HTTP status and ``{"error": {...}}``."""

    def __init__(self, status: int, kind: str, message: str, code: str | None = None, param: str | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": kind, "code": code, "message": message, "param": param, **extra}}


def invalid(message: str, code: str | None = None, param: str | None = None) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code, param)


def missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    """No such object: a 404 for the one the URL names, a 400 for one a parameter names."""
    return StripeError(404 if param == "id" else 400, "invalid_request_error", f"No such {kind}: '{object_id}'",
                       "resource_missing", param)


def parse_params(text: str) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=1``, ``expand[]=x``) as nested dicts and lists of strings."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        name, bracket, rest = key.partition("[")
        path = [name, *BRACKETS.findall(bracket + rest)]
        node = root
        for part in path[:-1]:
            node = node.setdefault(part or str(len(node)), {})
            if not isinstance(node, dict):
                raise invalid(f"Invalid hash: {key}", "parameter_invalid_empty", name)
        node[path[-1] or str(len(node))] = value
    return _lists_from_indexes(root)


def _lists_from_indexes(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _lists_from_indexes(item) for key, item in value.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def only_known(params: dict[str, Any], allowed: set[str]) -> None:
    for name in params:
        if name not in allowed and name != "expand":
            raise invalid(f"Received unknown parameter: {name}", "parameter_unknown", name)


def required(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value in (None, ""):
        raise invalid(f"Missing required param: {name}.", "parameter_missing", name)
    return value


def integer(params: dict[str, Any], name: str, minimum: int = 0, label: str | None = None) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.isdigit() or int(value) < minimum:
        raise invalid(f"Invalid integer: {value}", "parameter_invalid_integer", label or name)
    return int(value)


def choice(params: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = required(params, name)
    if value not in allowed:
        raise invalid(f"Invalid {name}: must be one of {', '.join(allowed)}", "parameter_invalid_empty", name)
    return str(value)


def metadata(params: dict[str, Any], name: str = "metadata") -> dict[str, str]:
    value = params.get(name, {})
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {name} must be a hash", "parameter_invalid_empty", name)
    return {key: item for key, item in value.items() if item != ""}


def line_items(value: Any) -> list[dict[str, Any]]:
    """``line_items`` with ``price_data``, checked as Stripe checks them, with integers parsed."""
    if not isinstance(value, list) or not value:
        raise invalid("Invalid array", "parameter_invalid_empty", "line_items")
    items, currencies = [], set()
    for index, item in enumerate(value):
        where = f"line_items[{index}]"
        if not isinstance(item, dict):
            raise invalid("Invalid object", "parameter_invalid_empty", where)
        if "price" in item:
            raise invalid("This fake takes price_data, not price ids.", "parameter_unknown", f"{where}[price]")
        quantity = integer(item, "quantity", minimum=1, label=f"{where}[quantity]")
        if quantity is None:
            raise invalid(f"Missing required param: {where}[quantity].", "parameter_missing", f"{where}[quantity]")
        price = item.get("price_data")
        if not isinstance(price, dict):
            raise invalid(f"Missing required param: {where}[price_data].", "parameter_missing", f"{where}[price_data]")
        amount = integer(price, "unit_amount", label=f"{where}[price_data][unit_amount]")
        currency = str(price.get("currency", "")).lower()
        name = (price.get("product_data") or {}).get("name") if isinstance(price.get("product_data"), dict) else None
        for label, present in (("unit_amount", amount is not None), ("currency", bool(currency)),
                               ("product_data][name", bool(name))):
            if not present:
                param = f"{where}[price_data][{label}]"
                raise invalid(f"Missing required param: {param}.", "parameter_missing", param)
        currencies.add(currency)
        items.append({"quantity": quantity, "price_data": {"currency": currency, "unit_amount": amount,
                                                           "product_data": {"name": name}}})
    if len(currencies) > 1:
        raise invalid("All line items must have the same currency.", None, "line_items")
    return items


def check_application_fee(fee: int | None, amount: int, account: str | None, params: dict[str, Any],
                           param: str) -> None:
    if fee is None:
        return
    destination = params.get("transfer_data", {})
    if account is None and not (isinstance(destination, dict) and destination.get("destination")):
        raise invalid("Can only apply an application_fee_amount when the PaymentIntent is attempting a direct "
                      "payment (using an OAuth key or Stripe-Account header) or destination payment (using "
                      "`transfer_data[destination]`).", None, param)
    if fee > amount:
        raise invalid("The application fee cannot be greater than the amount.", None, param)

