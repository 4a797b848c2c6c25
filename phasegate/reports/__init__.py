"""Weekly status reports: what a sponsor reads each week about one engagement, and the portfolio.

    facts      the ledger's side, read in a constant number of queries for any number of engagements
    progress   milestone progress and the burn-up series from Jira
    rules      red / amber / green: the rules, as data, each with its reason
    build      one engagement's report from the ledger, Jira and the metric sources
    render     the report as Block Kit, markdown, a table and terminal lines
    chart      the burn-up chart as a PNG (matplotlib, Agg)
    deliver    post once per ISO week, record in the ledger and the audit chain, upload the chart
    schedule   the weeks each engagement is owed a report for: due at its local weekday and time,
               until the post is in Slack; late ones marked late
    collect    every week owed, its engagement collected concurrently within a bound
"""
