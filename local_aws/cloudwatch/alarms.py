"""CloudWatch alarm evaluation: what CloudWatch does with the alarms moto only stores.

Every `interval` seconds (and on demand: `LocalAws.EvaluateAlarms`), each metric alarm is evaluated on its
metric as CloudWatch does ("Using Amazon CloudWatch alarms", "Configuring how alarms treat missing data"):
- the last `EvaluationPeriods` periods of `Period` seconds, ending now, each read with GetMetricStatistics
  (the alarm's Namespace, MetricName, Dimensions, Statistic, Unit) from moto, where clients put their data;
- a period breaches when its value compares to `Threshold` by `ComparisonOperator`; ALARM when at least
  `DatapointsToAlarm` (default: EvaluationPeriods) of them breach, else OK;
- a period without data counts per `TreatMissingData`: `missing` (the default) leaves it out, and with
  no data at all the state is INSUFFICIENT_DATA; `notBreaching` counts it good; `breaching` bad; `ignore`
  keeps the current state.
On a state change the new state is stored in moto (SetAlarmState, so DescribeAlarms shows it) and, when
ActionsEnabled, the actions of the new state (AlarmActions / OKActions / InsufficientDataActions) that are
SNS topics get CloudWatch's notification: Subject `ALARM: "<name>" in <region name>` and the alarm JSON
message (AlarmName, AlarmDescription, AWSAccountId, NewStateValue, NewStateReason, StateChangeTime, Region,
AlarmArn, OldStateValue, Trigger, the action lists). A state that lasts notifies once.

Why a periodic thread: clients call PutMetricData straight on moto (AWS_ENDPOINT_URL), so the gateway never
sees a datapoint arrive and cannot evaluate on write; CloudWatch itself evaluates every period.

Metric-math alarms (`Metrics`) are evaluated by `metric_math` for the functions it documents (METRICS(),
MAX/MIN/SUM/AVG of an array, arithmetic), each period's MetricStat values read as above; an expression it does
not support is refused: logged once, and the alarm set to INSUFFICIENT_DATA with the reason.
Not emulated: percentile statistics, anomaly detection and composite alarms are left in their state (logged
once); non-SNS actions (Auto Scaling, EC2, SSM) are logged, not run; the
look-back for `missing` data beyond the evaluation range.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from local_aws.cloudwatch import metric_math

log = logging.getLogger(__name__)

BREACHES: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
WORDS = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
ACTIONS = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}
# The region's name as CloudWatch writes it in the Subject and the message's Region.
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-central-1": "EU (Frankfurt)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class AlarmEvaluator:
    def __init__(
        self,
        client: Callable[[str], Any],
        region: str,
        account_id: str,
        clock: Callable[[], dt.datetime] = _now,
        interval: float = 10.0,
    ):
        self.client = client  # service name -> boto3 client on moto
        self.region = region
        self.account_id = account_id
        self.clock = clock
        self.interval = interval
        self._lock = threading.Lock()  # one evaluation at a time: a change notifies once
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._skipped: set[str] = set()

    # The periodic thread.
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alarm-evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.evaluate()
            except Exception:  # noqa: BLE001 - the next round tries again; the log says why this one failed
                log.exception("alarm evaluation failed")

    # One evaluation of every alarm.
    def evaluate(self, now: dt.datetime | None = None) -> list[dict]:
        """Evaluate every metric alarm at `now` (default: the clock); the state changes it made."""
        now = now or self.clock()
        cloudwatch = self.client("cloudwatch")
        changes = []
        with self._lock:
            pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
            for alarm in (alarm for page in pages for alarm in page.get("MetricAlarms", [])):
                change = self._evaluate_one(cloudwatch, alarm, now)
                if change:
                    changes.append(change)
        return changes

    def _evaluate_one(self, cloudwatch, alarm: dict, now: dt.datetime) -> dict | None:
        name = alarm["AlarmName"]
        old = alarm.get("StateValue", "INSUFFICIENT_DATA")
        if alarm.get("Metrics") and alarm.get("ComparisonOperator") in BREACHES:
            try:
                queries = alarm["Metrics"]
                returned = metric_math.check(queries)
                stats = [query["MetricStat"] for query in queries if "MetricStat" in query]
                period = int(returned.get("Period") or stats[0].get("Period") or 60)
            except (metric_math.Unsupported, KeyError, TypeError, ValueError) as error:
                return self._refuse(cloudwatch, alarm, old, now, f"{error}")
        elif alarm.get("Metrics") or not alarm.get("Statistic") or alarm.get("ComparisonOperator") not in BREACHES:
            if name not in self._skipped:
                self._skipped.add(name)
                log.info("alarm %s: not evaluated locally (percentiles or anomaly bands)", name)
            return None
        else:
            period = int(alarm.get("Period") or 60)
        periods = int(alarm.get("EvaluationPeriods") or 1)
        to_alarm = int(alarm.get("DatapointsToAlarm") or periods)
        # moto drops sub-seconds from the range and keeps timestamp < EndTime: end on the next whole second.
        end = now.replace(microsecond=0) + dt.timedelta(seconds=1)
        values: list[tuple[dt.datetime, float | None]] = []
        for index in range(periods):
            start = end - dt.timedelta(seconds=period * (index + 1))
            if alarm.get("Metrics"):
                try:
                    value = self._math_value(cloudwatch, alarm["Metrics"], start)
                except metric_math.Unsupported as error:
                    return self._refuse(cloudwatch, alarm, old, now, f"{error}")
                values.append((start, value))
                continue
            metric = {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"]}
            metric["Dimensions"] = alarm.get("Dimensions", [])
            values.append((start, _statistic(cloudwatch, metric, alarm["Statistic"], start, period, alarm.get("Unit"))))
        state, reason = self._state(alarm, values, to_alarm)
        if state is None or state == old:
            return None
        data = {
            "version": "1.0",
            "queryDate": _iso(now),
            "startDate": _iso(values[-1][0]),
            **({} if alarm.get("Metrics") else {"statistic": alarm["Statistic"]}),
            "period": period,
            "recentDatapoints": [value for _, value in values if value is not None],
            "threshold": alarm["Threshold"],
        }
        cloudwatch.set_alarm_state(
            AlarmName=name, StateValue=state, StateReason=reason, StateReasonData=json.dumps(data)
        )
        log.info("alarm %s: %s -> %s (%s)", name, old, state, reason)
        change = {"AlarmName": name, "OldStateValue": old, "NewStateValue": state, "NewStateReason": reason}
        if alarm.get("ActionsEnabled", True):
            change["Notified"] = self._notify(alarm, old, state, reason, now)
        return change

    def _math_value(self, cloudwatch, queries: list[dict], start: dt.datetime) -> float | None:
        """The returned query's value over the period starting at `start`: each MetricStat read, then the math."""
        read = {}
        for query in queries:
            if "MetricStat" in query:
                stat = query["MetricStat"]
                period = int(stat.get("Period") or 60)
                read[query["Id"]] = _statistic(
                    cloudwatch, stat["Metric"], stat["Stat"], start, period, stat.get("Unit")
                )
        return metric_math.evaluate(queries, read)

    def _refuse(self, cloudwatch, alarm: dict, old: str, now: dt.datetime, why: str) -> dict | None:
        """A metric-math alarm the local stack cannot compute: logged, and INSUFFICIENT_DATA with the reason."""
        name = alarm["AlarmName"]
        if name not in self._skipped:
            self._skipped.add(name)
            log.warning("alarm %s: metric math not evaluated locally, state INSUFFICIENT_DATA: %s", name, why)
        if old == "INSUFFICIENT_DATA":
            return None
        reason = f"Not evaluated by the local stack: {why}"
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="INSUFFICIENT_DATA", StateReason=reason[:1023])
        change = {"AlarmName": name, "OldStateValue": old, "NewStateValue": "INSUFFICIENT_DATA"}
        change["NewStateReason"] = reason
        if alarm.get("ActionsEnabled", True):
            change["Notified"] = self._notify(alarm, old, "INSUFFICIENT_DATA", reason, now)
        return change

    def _state(self, alarm: dict, values: list, to_alarm: int) -> tuple[str | None, str]:
        breaches = BREACHES[alarm["ComparisonOperator"]]
        threshold = float(alarm["Threshold"])
        treat = alarm.get("TreatMissingData", "missing")
        present = [(start, value) for start, value in values if value is not None]
        if not present:
            outcome = {"missing": "INSUFFICIENT_DATA", "notBreaching": "OK", "breaching": "ALARM", "ignore": None}
            return outcome.get(treat, "INSUFFICIENT_DATA"), f"Insufficient Data: {len(values)} datapoints were unknown."
        bad = sum(1 for _, value in present if breaches(value, threshold))
        if treat == "breaching":
            bad += len(values) - len(present)
        counted = len(values) if treat in ("breaching", "notBreaching") else len(present)
        shown = ", ".join(f"{value} ({start:%d/%m/%y %H:%M:%S})" for start, value in present)
        word = WORDS[alarm["ComparisonOperator"]]
        if bad >= min(to_alarm, counted) and bad > 0:
            return "ALARM", (
                f"Threshold Crossed: {bad} out of the last {counted} datapoints [{shown}] "
                f"{'was' if bad == 1 else 'were'} {word} the threshold ({threshold}) "
                f"(minimum {to_alarm} datapoint{'s' if to_alarm != 1 else ''} for OK -> ALARM transition)."
            )
        return "OK", (
            f"Threshold Crossed: {counted - bad} out of the last {counted} datapoints [{shown}] "
            f"{'was' if counted - bad == 1 else 'were'} not {word} the threshold ({threshold}) "
            f"(minimum 1 datapoint for ALARM -> OK transition)."
        )

    def _notify(self, alarm: dict, old: str, state: str, reason: str, now: dt.datetime) -> list[str]:
        region_name = REGION_NAMES.get(self.region, self.region)
        message = {
            "AlarmName": alarm["AlarmName"],
            "AlarmDescription": alarm.get("AlarmDescription"),
            "AWSAccountId": self.account_id,
            "AlarmConfigurationUpdatedTimestamp": _iso(alarm["AlarmConfigurationUpdatedTimestamp"])
            if isinstance(alarm.get("AlarmConfigurationUpdatedTimestamp"), dt.datetime)
            else None,
            "NewStateValue": state,
            "NewStateReason": reason,
            "StateChangeTime": _iso(now),
            "Region": region_name,
            "AlarmArn": alarm.get("AlarmArn"),
            "OldStateValue": old,
            "OKActions": alarm.get("OKActions", []),
            "AlarmActions": alarm.get("AlarmActions", []),
            "InsufficientDataActions": alarm.get("InsufficientDataActions", []),
            "Trigger": _trigger(alarm),
        }
        subject = f'{state}: "{alarm["AlarmName"]}" in {region_name}'[:100]  # SNS's Subject limit
        sent = []
        for action in alarm.get(ACTIONS[state], []):
            if not action.startswith("arn:") or action.split(":")[2] != "sns":
                log.info("alarm %s: action %s is not an SNS topic; not run locally", alarm["AlarmName"], action)
                continue
            try:
                self.client("sns").publish(TopicArn=action, Subject=subject, Message=json.dumps(message))
            except Exception:  # noqa: BLE001 - as CloudWatch: a failed action does not undo the state change
                log.exception("alarm %s: could not publish to %s", alarm["AlarmName"], action)
                continue
            sent.append(action)
        return sent


def _statistic(cloudwatch, metric: dict, statistic: str, start: dt.datetime, period: int, unit: str | None):
    """One period's statistic of one metric (GetMetricStatistics on moto), or None without data."""
    request = {
        "Namespace": metric["Namespace"],
        "MetricName": metric["MetricName"],
        "Dimensions": metric.get("Dimensions", []),
        "StartTime": start,
        "EndTime": start + dt.timedelta(seconds=period),
        "Period": period,
        "Statistics": [statistic],
    }
    if unit:
        request["Unit"] = unit
    points = cloudwatch.get_metric_statistics(**request)["Datapoints"]
    return points[0][statistic] if points else None


def _dimensions(dimensions: list[dict]) -> list[dict]:
    return [{"value": d["Value"], "name": d["Name"]} for d in dimensions]


def _trigger(alarm: dict) -> dict:
    """The message's Trigger: the metric and statistic, or, for metric math, the queries (as CloudWatch writes
    them: lower-case dimension keys, the Expression and Label of expressions, MetricStat of metrics)."""
    common = {
        "Period": alarm.get("Period"),
        "EvaluationPeriods": alarm.get("EvaluationPeriods"),
        "DatapointsToAlarm": alarm.get("DatapointsToAlarm", alarm.get("EvaluationPeriods")),
        "ComparisonOperator": alarm["ComparisonOperator"],
        "Threshold": alarm["Threshold"],
        "TreatMissingData": alarm.get("TreatMissingData", "missing"),
        "EvaluateLowSampleCountPercentile": "",
    }
    if not alarm.get("Metrics"):
        return {
            "MetricName": alarm["MetricName"],
            "Namespace": alarm["Namespace"],
            "StatisticType": "Statistic",
            "Statistic": alarm["Statistic"].upper(),
            "Unit": alarm.get("Unit"),
            "Dimensions": _dimensions(alarm.get("Dimensions", [])),
            **common,
        }
    metrics = []
    for query in alarm["Metrics"]:
        entry = {"Id": query["Id"], "ReturnData": query.get("ReturnData", True)}
        if "Expression" in query:
            entry.update(Expression=query["Expression"], Label=query.get("Label", query["Id"]))
        if "MetricStat" in query:
            stat = query["MetricStat"]
            entry["MetricStat"] = {
                "Metric": {
                    "Dimensions": _dimensions(stat["Metric"].get("Dimensions", [])),
                    "MetricName": stat["Metric"]["MetricName"],
                    "Namespace": stat["Metric"]["Namespace"],
                },
                "Period": stat.get("Period"),
                "Stat": stat["Stat"],
            }
        metrics.append(entry)
    return {"Metrics": metrics, **common}
