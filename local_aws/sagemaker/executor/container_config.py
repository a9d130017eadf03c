"""The files and variables SageMaker gives a job's container, written into the job's /opt/ml folder.

Processing ("How Amazon SageMaker Processing Configures Your Processing Container"):
/opt/ml/config/processingjobconfig.json (the job's description) and /opt/ml/config/resourceconfig.json.
Training ("How Amazon SageMaker Provides Training Information"): /opt/ml/input/config/hyperparameters.json
(every value a string), inputdataconfig.json (channel -> its settings), resourceconfig.json, and the SM_*
variables that SageMaker's framework containers set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

HOST = "algo-1"  # a one-instance job's only host, as SageMaker names it


def resource_config(instance_type: str) -> dict:
    return {
        "current_host": HOST,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": [HOST],
        "instance_groups": [
            {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": [HOST]}
        ],
        "network_interface_name": "eth0",
    }


def _write(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str))


def write_processing(root: Path, job: dict) -> None:
    instance_type = job.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceType", "ml.m5.xlarge")
    _write(root / "config" / "processingjobconfig.json", job)
    _write(root / "config" / "resourceconfig.json", resource_config(instance_type))


def input_data_config(arguments: dict) -> dict:
    config = {}
    for channel in arguments.get("InputDataConfig", []):
        source = channel.get("DataSource", {}).get("S3DataSource", {})
        settings = {
            "TrainingInputMode": channel.get(
                "InputMode", arguments["AlgorithmSpecification"].get("TrainingInputMode", "File")
            ),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        if "ContentType" in channel:  # left out when the request leaves it out (the algorithm then assumes its default)
            settings["ContentType"] = channel["ContentType"]
        config[channel["ChannelName"]] = settings
    return config


def write_training(root: Path, arguments: dict) -> None:
    instance_type = arguments.get("ResourceConfig", {}).get("InstanceType", "ml.m5.xlarge")
    hyperparameters = {key: str(value) for key, value in arguments.get("HyperParameters", {}).items()}
    _write(root / "input" / "config" / "hyperparameters.json", hyperparameters)
    _write(root / "input" / "config" / "inputdataconfig.json", input_data_config(arguments))
    _write(root / "input" / "config" / "resourceconfig.json", resource_config(instance_type))
    for folder in ("model", "output/data", "code"):
        (root / folder).mkdir(parents=True, exist_ok=True)


def training_environment(arguments: dict, job_name: str) -> dict[str, str]:
    channels = [channel["ChannelName"] for channel in arguments.get("InputDataConfig", [])]
    hyperparameters = {key: str(value) for key, value in arguments.get("HyperParameters", {}).items()}
    instance_type = arguments.get("ResourceConfig", {}).get("InstanceType", "ml.m5.xlarge")
    environment = {
        "SM_MODEL_DIR": "/opt/ml/model",
        "SM_INPUT_DIR": "/opt/ml/input",
        "SM_INPUT_CONFIG_DIR": "/opt/ml/input/config",
        "SM_OUTPUT_DIR": "/opt/ml/output",
        "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hyperparameters),
        "SM_HOSTS": json.dumps([HOST]),
        "SM_CURRENT_HOST": HOST,
        "SM_CURRENT_INSTANCE_TYPE": instance_type,
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_RESOURCE_CONFIG": json.dumps(resource_config(instance_type)),
        "SM_INPUT_DATA_CONFIG": json.dumps(input_data_config(arguments)),
        "TRAINING_JOB_NAME": job_name,
    }
    for name in channels:
        environment[f"SM_CHANNEL_{name.upper()}"] = f"/opt/ml/input/data/{name}"
    for key, value in hyperparameters.items():
        environment[f"SM_HP_{key.upper()}"] = value
    return environment
