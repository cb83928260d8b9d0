"""The browser side: dashboard and viewer pages, served as static files.

``static/`` holds the HTML, CSS and JavaScript modules (all scripts are files: the CSP
allows no inline script). ``static/build/wire.js`` is built by ``make setup`` (``npm ci``
then ``npm run build``) from ``proto/guruconnect.proto`` and the npm packages; it is not in
the repository.
"""
