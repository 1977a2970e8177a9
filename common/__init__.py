"""What two or more roles share: settings, logging, systemd notification, ticket numbering.

It is the lowest layer: it imports no other package of the project (docs/architecture.md,
"Layers").
"""
