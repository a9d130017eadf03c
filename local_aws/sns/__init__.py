"""SNS on the local stack: moto's topics, and an outbox a person's inbox stands in for (`outbox`)."""
