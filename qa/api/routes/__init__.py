"""The API's routers, one module per concern; ``qa.api.app`` includes them all."""
