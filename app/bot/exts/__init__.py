"""The bot's features, each a discord.py extension with `setup(bot)` (loaded by name in
app/bot/client.py). They read their services off the bot; the bot type is imported only for type
checking, so nothing here imports the client at run time."""
