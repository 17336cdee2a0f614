# The project's Airflow image: the official apache/airflow:3.3.2 plus the pinned runtime
# requirements and the project package (include/ and plugins/video_analytics).
FROM apache/airflow:3.3.2
COPY --chown=airflow:root requirements.txt /opt/video/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /opt/video/requirements.txt
COPY --chown=airflow:root pyproject.toml /opt/video/pyproject.toml
COPY --chown=airflow:root include /opt/video/include
COPY --chown=airflow:root plugins /opt/video/plugins
RUN pip install --no-cache-dir --no-deps /opt/video
