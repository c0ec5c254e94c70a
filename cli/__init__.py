"""mailwarden.cli"""
