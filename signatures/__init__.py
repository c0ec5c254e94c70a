"""mailwarden.signatures"""
