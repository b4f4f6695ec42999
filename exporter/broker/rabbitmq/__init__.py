"""The broker reader for RabbitMQ (amqp://, amqps://, pyamqp://).

`reader.RabbitReader` reads every queue of the vhost from the management API in one
(paginated) request per collection; `management` is that HTTP client, `figures` turns
its answers into figures, `health` is the AMQP connection check. docs/operations.md
("RabbitMQ") says what each figure means and how fresh it is.
"""
