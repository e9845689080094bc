"""The notification service's edges: Postgres (repository, message_log, delivery_queue), HTTP sender."""
