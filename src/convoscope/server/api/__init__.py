"""REST API, version 1: one router per resource."""
