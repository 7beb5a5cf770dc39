"""SOP files: `authoring` reads and checks them, `runtime` runs them, `views` shows what
they would do. The festival calendar they use is `bot.calendar`."""
