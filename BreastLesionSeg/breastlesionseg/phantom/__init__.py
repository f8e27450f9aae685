"""breastlesionseg.phantom"""
