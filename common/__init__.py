"""What two or more roles share: settings, logging, systemd notification."""
