"""breastlesionseg.training"""
