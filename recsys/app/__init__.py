"""The Streamlit inspector's data loading and formatting."""
