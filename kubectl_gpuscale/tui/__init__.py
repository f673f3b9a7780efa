"""`kubectl gpuscale top`: the Textual dashboard, its view model and its data sources (live | demo)."""
