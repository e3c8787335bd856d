"""What is served: the candidate rule, the ranking methods and the choice among them."""
