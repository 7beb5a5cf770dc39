"""The operator console in the browser (docs/console.md): server-rendered pages over the
bot's database, with a few actions, served by `sopbot run` and by `sopbot console` alone.

Every page needs a login with the token from the environment (`[console] token_env`); every
action needs the session's CSRF token; every name and message a contact wrote is escaped.
"""
