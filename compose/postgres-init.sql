-- Each service owns its database, as on the cluster. Runs once, when the data volume is new.
CREATE DATABASE user_management;
CREATE DATABASE vendor_management;
CREATE DATABASE search_discovery;
CREATE DATABASE webhooks;
CREATE DATABASE file_management;
