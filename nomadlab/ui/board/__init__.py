"""The board feature's UI: screen.py (mode 3; the keys that change cards in actions.py),
pane.py (its workspace pane), dialogs.py (card form, boards), detail.py (a card's
detail), cards.py (a card as text, the columns' widgets)."""
