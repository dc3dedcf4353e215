print("croupier")
