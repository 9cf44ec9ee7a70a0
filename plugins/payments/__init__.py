"""The payments plugin (in progress): fees, tenants' connected Stripe accounts and Stripe's webhooks."""
