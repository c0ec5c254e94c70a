"""mailwarden.gateway"""
