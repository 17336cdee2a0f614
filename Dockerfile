# The project's Airflow image: the official apache/airflow:3.3.2 plus the pinned runtime
# requirements and the project package (include/ and plugins/video_analytics).
FROM apache/airflow:3.3.2
# gcc builds the C accelerators of online time and plays (setup.py; optional: without them the Python code runs)
USER root
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root requirements.txt /opt/video/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /opt/video/requirements.txt
COPY --chown=airflow:root pyproject.toml setup.py /opt/video/
COPY --chown=airflow:root include /opt/video/include
COPY --chown=airflow:root plugins /opt/video/plugins
# The package declares its dependencies (requirements.txt, already installed above); pip check
# proves they resolve together with the image's Airflow.
RUN pip install --no-cache-dir "apache-airflow==3.3.2" /opt/video && pip check
