"""Contact profiles brought in from other systems: `sopbot import-contacts`."""
