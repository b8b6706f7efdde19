print("amars: under construction")
