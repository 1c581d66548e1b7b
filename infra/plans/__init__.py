"""County hand-over documents derived from the region model: the hardware and network plan a
county team builds from, the acceptance checklist it runs (`plan verify`), and the city's board.

Why under `infra/`: a plan is a document about the infrastructure the other engines build
(the same sites, hosts, links and rules), and its checks run against provisioned hosts through
the region's outputs. Nothing here prints or exits: `cli/plan.py` renders the results.
"""
