"""The recommendation inspector: `streamlit run streamlit/pred_inspector.py`.

Layout only; every number and caption comes from `recsys.app.inspector` (unit-tested there).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from recsys import run_folder as rf
from recsys.app import inspector as ins
from recsys.settings import ConfigError, Settings, load_settings

GRID_COLUMNS = 6
LIVE_REFRESH_SECONDS = 5
SIDEBAR_WIDTH_PX = 420  # the run and metrics tables fit without scrolling (Streamlit: 256)


@st.cache_data(ttl=30, show_spinner="Looking for runs of the flow...")
def cached_runs(metaflow_root: Path | None) -> list[ins.RunRef]:
    return ins.recent_runs(metaflow_root)


@st.cache_resource(max_entries=3, show_spinner="Loading the run's predictions...")
def cached_run_data(export_dir: Path) -> ins.RunData:
    """Shared, not copied, between reruns: switching customers only does index look-ups."""
    return ins.load_run_data(export_dir)


@st.cache_data(ttl=60, show_spinner=False)
def cached_history(settings: Settings, customer_id: str, before) -> tuple:
    """(attributes, history); cached briefly so flipping between customers stays instant."""
    return (
        ins.customer_attributes(settings, customer_id),
        ins.purchase_history(settings, customer_id, before),
    )


def show_grid(cards: list[ins.Card]) -> None:
    for start in range(0, len(cards), GRID_COLUMNS):
        row = cards[start : start + GRID_COLUMNS]
        for column, card in zip(st.columns(GRID_COLUMNS), row, strict=False):
            with column.container(border=card.hit):
                if card.hit:
                    st.badge("bought in test week", icon=":material/check_circle:", color="green")
                st.image(card.image, caption=card.caption, width="stretch")


def sidebar(settings: Settings) -> ins.RunData | None:
    runs = cached_runs(settings.metaflow_root)
    if not runs:
        st.info(rf.no_run_message(settings))
        return None
    ref = st.sidebar.selectbox("Run", runs, format_func=lambda r: r.label, key="run")
    try:
        run = cached_run_data(ref.export_dir)
    except rf.RunMissing as error:
        st.error(str(error))
        return None
    st.sidebar.table(ins.run_summary(run))
    with st.sidebar.expander("Hyperparameters"):
        st.json(ins.hyperparameters(run))
    st.sidebar.subheader("MAP@12: model vs baselines")
    st.sidebar.table(ins.metric_table(run.metrics))
    st.sidebar.caption("All test customers, with a 95% bootstrap interval over customers:")
    st.sidebar.dataframe(ins.interval_table(run.metrics))
    with st.sidebar.expander("All metrics"):
        st.dataframe(run.metrics, hide_index=True)
    st.sidebar.bar_chart(ins.metric_chart(run.metrics), stack=False, y_label="map@12")
    return run


def pick_customer(run: ins.RunData) -> str | None:
    only_buyers = st.checkbox("Only customers with test-week purchases", value=True)
    pool = ins.candidate_customers(run, only_buyers)
    left, right = st.columns([4, 1])
    right.button(
        "Random customer",
        icon=":material/shuffle:",
        on_click=lambda: st.session_state.update(prefix=ins.random_customer(pool) or ""),
    )
    prefix = left.text_input("Customer id (or its start)", key="prefix")
    matches = ins.match_customers(pool, prefix)
    if not matches:
        st.warning("No customer id starts with the text typed:")
        st.text(prefix)  # plain text: typed input is never rendered as Markdown
        return None
    start = matches.index(ins.start_customer(run, matches))
    return st.selectbox(f"Customer ({len(matches)} shown)", matches, index=start, key="customer")


def history_section(settings: Settings, run: ins.RunData, customer_id: str) -> None:
    try:
        attributes, history = cached_history(settings, customer_id, run.test_start)
    except ins.EngineUnavailable as error:
        st.warning(str(error))
        return
    st.subheader("Attributes")
    st.dataframe([attributes] if attributes else [], width="stretch")
    if attributes is None:
        st.caption("Not in customers_t (unknown to the streaming views).")
    st.subheader(f"Purchase history before the test week ({len(history)} shown, newest first)")
    if history.empty:
        st.info("This customer bought nothing before the test week (a cold customer).")
    show_grid(ins.history_cards(history, settings))


def recommendations_section(settings: Settings, run: ins.RunData, customer_id: str) -> None:
    recs = ins.recommendations(run, customer_id)
    hits = int(recs["hit"].sum())
    st.subheader(f"Top {ins.TOP_K} recommendations ({hits} bought in the test week)")
    st.caption(ins.prediction_note(run))
    groups = st.multiselect("Product groups", ins.product_groups(recs), key="groups")
    show_grid(ins.recommendation_cards(ins.filter_by_group(recs, groups), settings))


def live_section(settings: Settings, customer_id: str) -> None:
    st.subheader("Live: latest purchases in the streaming views now")
    try:
        live = ins.live_purchases(settings, customer_id)
    except ins.EngineUnavailable as error:
        st.warning(str(error))
        return
    if live.empty:
        st.info("No purchases of this customer in the streaming views yet.")
    show_grid(ins.history_cards(live, settings))


def service_section(settings: Settings, run: ins.RunData, customer_id: str) -> None:
    """The recommendation service's answer now: it changes as purchases stream in."""
    st.subheader("Live recommendations (the service, now)")
    try:
        answer, cards = ins.live_recommendations(settings, run, customer_id)
        bought, history = ins.live_history(settings, customer_id)
    except ins.ServiceUnavailable as error:
        st.info(str(error))
        return
    hits = sum(card.hit for card in cards)
    st.caption(
        f"Run {answer['run_id']}, as of {answer['as_of']}: {hits} of {len(cards)} bought in "
        f"the test week. Latest purchases in the views: {bought['as_of'] or 'none'}."
    )
    show_grid(cards)
    st.caption("Latest purchases, as the service reads them")
    show_grid(history)


def main() -> None:
    st.set_page_config(
        page_title="H&M recommendations inspector",
        layout="wide",
        initial_sidebar_state=SIDEBAR_WIDTH_PX,
    )
    st.title("H&M recommendations inspector")
    try:
        settings = load_settings()
    except ConfigError as error:
        st.error(f"Configuration error: {error}")
        return
    run = sidebar(settings)
    if run is None:
        return
    settings, notes = rf.settings_for_run(settings, run.info)
    with st.sidebar.expander("Data this page reads"):
        st.code("\n".join(notes), language=None)
    if not run.info.photos:
        st.info("This run's data has no product photos: the tiles show placeholders.")
    customer_id = pick_customer(run)
    if customer_id is None:
        return
    st.subheader(f"Customer {customer_id}")
    history_section(settings, run, customer_id)
    recommendations_section(settings, run, customer_id)
    auto = st.toggle(f"Refresh the live section every {LIVE_REFRESH_SECONDS} s")
    st.fragment(run_every=LIVE_REFRESH_SECONDS if auto else None)(live_section)(
        settings, customer_id
    )
    st.fragment(run_every=LIVE_REFRESH_SECONDS if auto else None)(service_section)(
        settings, run, customer_id
    )


main()
