"""mailwarden.rules"""
