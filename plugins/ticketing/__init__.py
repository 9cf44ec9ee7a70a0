"""Ticketing: events, ticket types, capacity, carts, orders and the storefront."""
