print("layercollapse")
