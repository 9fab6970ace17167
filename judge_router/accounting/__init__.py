"""Money: the ledger, prices, savings statistics, reports and the simulator."""
