"""breastlesionseg.inference"""
