"""breastlesionseg.breast"""
