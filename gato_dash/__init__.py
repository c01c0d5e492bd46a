"""GATO Dashboard: a Plotly Dash app around the gato_core category optimiser.

``gato_dash.app.create_app(data_dir)`` builds the app; ``python app.py`` serves it.
"""
