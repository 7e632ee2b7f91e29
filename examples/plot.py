# Example for `python -m app run examples/plot.py --attach examples/sales.csv`
df = load_file("sales.csv")
print(df.groupby("region")["total"].sum())

import matplotlib.pyplot as plt

for region, rows in df.groupby("region"):
    plt.plot(rows["month"], rows["total"], marker="o", label=region)
plt.legend()
plt.title("Sales by month")
plt.savefig("sales.png", dpi=120)
print("saved sales.png")
