pytest_plugins = ["bilten_core.testing"]
