"""mailwarden.store"""
