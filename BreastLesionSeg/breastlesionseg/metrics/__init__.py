"""breastlesionseg.metrics"""
