"""breastlesionseg.nn"""
