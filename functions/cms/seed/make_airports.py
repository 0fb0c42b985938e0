#!/usr/bin/env python3
"""Writes airports.csv, the airports the seed command turns into search
suggestions (airports, and from them cities and countries).

Run once by hand when the data should be refreshed; the build never runs it
and never downloads anything:

    python3 -m venv "${TMPDIR:-/tmp}/airports-venv" && venv="${TMPDIR:-/tmp}/airports-venv"
    "$venv/bin/pip" install airportsdata==20260905 airports-py==3.1.0 babel==2.19.0
    "$venv/bin/python" functions/cms/seed/make_airports.py

Sources (all MIT or BSD licensed; see NOTICE beside this file):
- airportsdata 20260905 (MIT, Mike Borsetti; includes mwgg/Airports, MIT):
  IATA and ICAO codes, names, cities, subdivisions, countries, positions,
  time zones, and iata_macs.csv (metropolitan area codes such as LON).
- airports-py 3.1.0 (MIT, Aashish Vivekanand): the airport's size class
  (large_airport, medium_airport) and whether it has scheduled service, in
  fields named as OurAirports names them (the package names no source).
- Babel 2.19.0 (BSD-3-Clause; CLDR data under the Unicode licence): English
  country names for ISO 3166 codes.

Kept: airports with an IATA code that airports-py classes as large or
medium with scheduled service (a few thousand, the ones a traveller books).
City names are cleaned for search (the metropolitan area's name where the
airport belongs to one, island suffixes and "/second town" parts dropped,
a few well-known airports named for the city travellers search for).

Popularity is a prior, not a measurement: the seed's suggestions need an
order before the search-popularity job has real searches to count. The
busiest hubs (by published passenger rankings) come first, then large
airports, then medium ones.
"""

import csv
import gzip
import json
import os
import re
import sys

import airports as airports_py
import airportsdata
from babel import Locale

# CLDR's standard English names are written for lists ("Congo - Kinshasa",
# "Hong Kong SAR China"); these read better in a search box.
COUNTRY_NAMES = {
    "CD": "Democratic Republic of the Congo",
    "CG": "Republic of the Congo",
    "HK": "Hong Kong",
    "MO": "Macao",
    "MM": "Myanmar",
    "PS": "Palestine",
    "SH": "Saint Helena",
    "UM": "United States Minor Outlying Islands",
}

# The city a traveller types, where the source names the airport's town.
CITY_NAMES = {
    "YUL": "Montreal", "YVR": "Vancouver", "YYZ": "Toronto", "NLU": "Mexico City",
    "MDE": "Medellin", "PTY": "Panama City", "CVG": "Cincinnati", "BDL": "Hartford",
    "GSP": "Greenville", "BJX": "Leon", "MLA": "Valletta", "NAP": "Naples",
    "FLR": "Florence", "VCE": "Venice", "GOA": "Genoa", "TRN": "Turin",
    "BEG": "Belgrade", "SVQ": "Seville", "PMI": "Palma de Mallorca", "MFM": "Macau",
    "ZNZ": "Zanzibar", "GOI": "Goa", "GOX": "Goa", "JHB": "Johor Bahru",
    "USM": "Koh Samui", "UPG": "Makassar", "KRS": "Kristiansand", "DSS": "Dakar",
    "SAP": "San Pedro Sula", "NTL": "Newcastle", "CTS": "Sapporo", "DPS": "Bali",
    "HKT": "Phuket", "NGO": "Nagoya", "BKO": "Bamako", "XPL": "Tegucigalpa",
    "PBM": "Paramaribo", "GUM": "Guam", "KIX": "Osaka", "MLE": "Male",
}

# Busiest passenger airports, busiest first (ACI world rankings, 2023-2024).
HUBS = (
    "ATL DXB DFW LHR HND DEN IST LAX ORD DEL CDG JFK AMS MAD FRA CAN SIN ICN "
    "BKK LAS MCO CLT MIA SFO SEA EWR PHX IAH BCN MUC FCO PVG PEK SZX CTU DOH "
    "HKG KUL CGK BOM SYD YYZ MEX GRU NRT LGW SAW BOS MSP JED RUH BLR MNL LIS"
).split()


def clean_city(code, city, metro_names):
    if code in CITY_NAMES:
        return CITY_NAMES[code]
    if code in metro_names:
        return metro_names[code]
    city = city.split(",")[0]
    city = re.sub(r"-[A-Za-z ]+ Island$", "", city)
    city = re.sub(r" Island$", "", city)
    city = re.split(r" ?/ ?", city)[0]
    city = re.sub(r" \(.*\)$", "", city)
    return city.strip()


def popularity(code, size):
    if code in HUBS:
        return 100 - HUBS.index(code) // 2
    return 55 if size == "large" else 25


def main():
    out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "airports.csv")
    by_iata = airportsdata.load("IATA")
    metro_names = {}
    with open(os.path.join(os.path.dirname(airportsdata.__file__), "iata_macs.csv"), newline="") as f:
        for row in csv.DictReader(f):
            metro_names[row["Airport Code"]] = row["City Name"]
            by_iata.get(row["Airport Code"], {})["metro"] = row["City Code"]
    data_file = os.path.join(os.path.dirname(airports_py.__file__), "data", "airports.gz")
    classes = {
        a["iata"]: a["type"].removesuffix("_airport")
        for a in json.loads(gzip.open(data_file).read())
        if a["iata"] and a["scheduled_service"] == "TRUE"
        and a["type"] in ("large_airport", "medium_airport")
    }
    countries = Locale("en").territories
    rows = []
    for code, airport in sorted(by_iata.items()):
        size = classes.get(code)
        if size is None or not re.fullmatch(r"[A-Z]{3}", code):
            continue
        city = clean_city(code, airport["city"], metro_names)
        if not city:
            continue
        country_code = airport["country"]
        rows.append({
            "iata": code,
            "icao": airport["icao"],
            "name": airport["name"],
            "city": city,
            "subdivision": airport["subd"],
            "countryCode": country_code,
            "country": COUNTRY_NAMES.get(country_code, countries[country_code]),
            "metroCode": airport.get("metro", ""),
            "latitude": round(airport["lat"], 4),
            "longitude": round(airport["lon"], 4),
            "timezone": airport["tz"],
            "size": size,
            "popularity": popularity(code, size),
        })
    with open(out_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} airports written to {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
