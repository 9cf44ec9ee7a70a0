"""The payments plugin (in progress): fees, and so far nothing that talks to a payment provider."""
