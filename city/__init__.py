"""The city role: many offices (branches) seen as one.

It runs on a server of the city's IT: the city's Mosquitto, to which every branch's
broker bridges; a consumer that stores every branch's history in PostgreSQL exactly once
and keeps their live state; and the city's web pages (portal, admin, API). Each branch
keeps working alone when the city is away. ``docs/city.md`` describes it.
"""
