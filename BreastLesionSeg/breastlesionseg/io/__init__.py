"""breastlesionseg.io"""
